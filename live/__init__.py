"""Live trading: fail-closed arming, masked secrets, log redaction, preflight, the venue layer that
places real orders (venue.py), the live desk (desk.py), the kill switch and the operator commands.

Every order goes through LiveVenue.place, which checks the venue's rules first and never resends an
order whose fate is unknown; live trading starts only after arming and a passing preflight.
"""
