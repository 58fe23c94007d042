"""The two behaviours the seed describes: official fal, and the intermediary."""

from __future__ import annotations

from dataclasses import dataclass

FAL_QUEUE_URL = "https://queue.fal.run"


@dataclass(frozen=True, slots=True)
class Profile:
    """How a server authenticates callers and which base its returned URLs use.

    `request_url_base` is where returned response/status/cancel URLs point:
    None means the server's own public base (official fal), a URL means that
    fixed base (the intermediary answers with ``https://queue.fal.run`` URLs its
    callers must rewrite). Media URLs are always on the server's own base, so
    they can be downloaded from the mock.
    """

    name: str
    auth_scheme: str
    request_url_base: str | None = None

    @property
    def needs_rewrite(self) -> bool:
        """True when callers must rewrite the request URLs this profile returns."""
        return self.request_url_base is not None


OFFICIAL = Profile(name="official", auth_scheme="Key")
INTERMEDIARY = Profile(name="intermediary", auth_scheme="Bearer", request_url_base=FAL_QUEUE_URL)
PROFILES: dict[str, Profile] = {p.name: p for p in (OFFICIAL, INTERMEDIARY)}


def get_profile(name: str) -> Profile:
    """The profile called `name`; ValueError lists the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}: choose one of {', '.join(sorted(PROFILES))}"
        ) from None
