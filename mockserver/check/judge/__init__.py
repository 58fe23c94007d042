"""The protocol's rules as plain functions: captured exchanges in, findings out.

Nothing here sends a request or needs an event loop: `mockserver check` feeds
these functions what it captured, and so can anything else that talks to a
queue server (a Locust user, a script) by building `Exchange` values from its
own answers::

    from mockserver.check import judge
    from mockserver.check.exchange import Exchange

    answer = Exchange("POST", url, response.status_code, response.headers, response.content)
    finding = judge.submit.accepted(answer)   # Finding(check, outcome, reason, exchanges)

Modules: `submit` (auth, validation, accepted, URLs), `status` (polls, the
stream), `output` (result, schema, fidelity), `media` (downloads, pixel size,
duration), `requests` (cancel,
unknown ids, another key), `webhook` (body, signature).
"""

from mockserver.check.judge import media, output, requests, status, submit, webhook

__all__ = ["media", "output", "requests", "status", "submit", "webhook"]
