"""The Content-Security-Policy of every answer: scripts, styles and images from this site only, no inline script
or style, no plugin, no framing, forms posting here only."""

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")
