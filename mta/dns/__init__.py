"""The resolver interface components see, and the live dnspython resolver."""
