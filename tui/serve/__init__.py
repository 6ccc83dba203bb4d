"""`netcon serve`: the console served to browsers through textual-serve.

Kept light: the console process of each browser session (:mod:`tui.serve.console`)
imports this package too, and must not pay for the web server.
"""

# Set in a browser session's console process: the name of the host serving it.
SERVED_BY = "NETCON_SERVED_BY"
# Set in it too: the pid of netcon serve, which the console ends with.
SERVER_PID = "NETCON_SERVER_PID"
