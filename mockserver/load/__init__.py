"""Load and soak: the queue flow under many simulated users, on Locust.

`mockserver load` (needs the `load` extra) runs Locust users that submit, poll
or stream, fetch the result and download its media, judge every answer with
live mode's protocol checks, and count lost jobs exactly. Locust patches the
standard library with gevent when it is imported, so only this package's
runtime (`engine`, `user`) imports it, and only inside the `load` command.
"""
