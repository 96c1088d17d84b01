"""Paper trading: the domain engine's fill model against the feeds' live books, driven by Ray actors."""
