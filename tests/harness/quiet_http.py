"""A loopback HTTP server for tests that keeps quiet when a client goes away.

The router's clients time out and hang up on purpose in many tests; the standard
server then prints a traceback from its request thread, which can land in a later
test's captured stderr. A client that went away is expected here, not an error.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
