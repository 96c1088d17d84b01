"""Market data: importers for the recorded formats, the Parquet book/candle store, the synthetic Top-N generator.

This is the I/O edge: everything past it sees only domain Books and Candle records.
"""
