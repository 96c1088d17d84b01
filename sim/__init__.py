"""Local exchange simulator: a real loopback server speaking the Upbit and Binance wire protocols."""
from sim.overrides import ccxt_overrides
from sim.server import SimServer, SimThread

__all__ = ["SimServer", "SimThread", "ccxt_overrides"]
