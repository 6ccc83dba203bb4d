// Says on the page why the console's websocket closed (the console was quit, its
// process died, every console is in use, the server stopped) and offers to start
// again. Loaded before textual.js, which opens the websocket through this wrapper.
(function () {
  "use strict";

  const ENDINGS = {
    4000: ["The console was closed", "It was quit from its own keys."],
    4001: ["The console died", "Its process ended without being quit."],
    4002: ["All browser consoles are in use", ""],
    1001: ["netcon serve stopped", "The server was stopped; every console ended with it."],
  };
  const LOST = [
    "The connection was lost",
    "netcon serve could not be reached, or refused this page's websocket.",
  ];

  function show(code, reason) {
    const [title, text] = ENDINGS[code] || LOST;
    let detail = text;
    if (code === 4002) {
      const limit = document.body.dataset.limit;
      detail = "netcon serve runs at most " + limit + " browser consoles at once " +
        "(--max-sessions). Close one (its tab) and start again.";
    }
    document.getElementById("ended-title").textContent = title;
    document.getElementById("ended-text").textContent =
      reason && code === 4001 ? reason.charAt(0).toUpperCase() + reason.slice(1) + "." : detail;
    document.body.dataset.ended = String(code);
    document.body.classList.add("-closed");
  }

  const Native = window.WebSocket;
  class Watched extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("close", (event) => show(event.code, event.reason));
      // Keys go to the console from the start, as in a terminal, without a click.
      this.addEventListener("open", () => {
        const input = document.querySelector(".xterm-helper-textarea");
        if (input) input.focus();
      });
    }
  }
  window.WebSocket = Watched;

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("again").addEventListener("click", () => location.reload());
  });
})();
