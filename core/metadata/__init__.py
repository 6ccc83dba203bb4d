"""The metadata service guests reach at http://169.254.169.254/ (EC2 and OpenStack paths)."""
