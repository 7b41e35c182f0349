"""Option analytics: Black-76 / Black-Scholes values and Greeks, implied volatility, chains.

Everything here is Qt-free and works on numpy arrays so a whole chain (hundreds of strikes)
is priced in one vectorised pass per tick batch; scalar helpers wrap the same code.
"""
