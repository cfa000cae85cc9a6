"""profefe_api.py — the calls of the profefe HTTP API that the Python parts
of the integration scripts make, against a server at BASE (e.g. $URL).

tests/lib.sh puts tests/tools on PYTHONPATH, so a script's Python does
`from profefe_api import get, find`.  An HTTP error status is a result
here, not an exception: tests assert on it.  Python stdlib only.
"""
import urllib.error
import urllib.parse
import urllib.request

# A time range holding every profile the tests make.
ALL_TIME = {"from": "1970-01-02T00:00:00", "to": "2199-01-01T00:00:00"}


def get(base, path):
    """GET base + path: (HTTP status, body bytes)."""
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def find(base, service, ptype):
    """The list of SERVICE's profiles of type PTYPE over ALL_TIME:
    (HTTP status, body bytes)."""
    q = urllib.parse.urlencode({"service": service, "type": ptype, **ALL_TIME})
    return get(base, "/api/0/profiles?" + q)
