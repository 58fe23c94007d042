"""Recording: a reverse proxy that turns a real intermediary's answers into contracts.

`mockserver record --upstream URL --out DIR` forwards every exchange of the
queue flow, answers the client with what the upstream said, and writes what it
saw (inputs, outputs, media bytes, timing, protocol traits) into DIR in the
contracts format, scrubbed of secrets, so `mockserver serve --contracts DIR`
replays it offline.
"""

from mockserver.recording.proxy import Recorder, create_recorder_app
from mockserver.recording.store import RecordingStore
from mockserver.redact import LeakError, Redactor

__all__ = ["LeakError", "Recorder", "RecordingStore", "Redactor", "create_recorder_app"]
