"""One module per alert destination; each only formats and sends."""
