"""Server configuration: the command-line flags, and the server settings in Settings.fds.

Settings.fds is SwarmUI's server settings file. swarmkeeper reads the sections it uses
(``Backends``, ``Network``, ``UserAuthorization``) with SwarmUI's names and defaults, leaves every
other section and key of a copied SwarmUI file alone, and writes a commented file of its own when
there is none. A file that is there is read strictly: a line that does not parse, a known section
that is not a section, or a known setting whose value does not fit its type stops the start with
DataFileError (file, line, what is wrong), and the file is never rewritten; a security setting
never silently falls back to its default.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmkeeper import fds
from swarmkeeper.backends.autoscale_timings import AutoscaleTimings
from swarmkeeper.backends.settings import boolean, decimal, dropdown, integer, schema_of, text
from swarmkeeper.exceptions import DataFileError, SettingsError
from swarmkeeper.files import read_text, write_atomic
from swarmkeeper.limits import WireLimits

log = logging.getLogger("swarmkeeper.config")


@dataclass(frozen=True)
class ServerConfig:
    """What the command line chose (SwarmUI's flag names)."""

    host: str = "127.0.0.1"
    port: int = 7801
    data_dir: Path = Path("Data")
    backends_file: Path | None = None
    settings_file: Path | None = None
    lock_settings: bool = False
    loglevel: str = "Info"
    user_id: str = "local"
    #: --require_accounts: named users must log in (or use an API key), as UserAuthorization.AuthorizationRequired.
    require_accounts: bool = False
    #: --public_metrics: GET /metrics answers anyone, even with accounts on.
    public_metrics: bool = False
    #: --ready_requires_backend: /health/ready needs at least one running backend.
    ready_requires_backend: bool = True
    #: Modules whose BACKEND_TYPES are registered after the built-in types (plug-ins).
    backend_type_modules: tuple[str, ...] = ()
    #: --comfy_port: the ComfyUI-compatible pool's own port (``serve`` defaults to 7802); None: only
    #: under /ComfyBackendDirect/ on the main port.
    comfy_port: int | None = None
    #: --allowed_origins: origins (``https://host[:port]``) besides the server's own whose browser
    #: pages may call the ComfyUI pool; every other Origin is refused (docs/security.md, 7).
    allowed_origins: tuple[str, ...] = ()
    #: --keep_backends: a graceful stop leaves self-started ComfyUIs running for the next start to
    #: adopt (SwarmUI, and the default: they are stopped).
    keep_backends: bool = False
    #: --require_control_within: minutes after which a server that got no AdminTakeControl shuts
    #: itself down (0: never), as SwarmUI's autoscaled workers do.
    require_control_within: float = 0.0
    #: --no_persist: write nothing to the data folder (the database in memory, no Settings.fds, no
    #: backend saves, no log files): for short-lived workers that share an install.
    no_persist: bool = False
    #: The autoscaling backend's timings (tests shorten them; see backends/autoscale_timings.py).
    autoscale: AutoscaleTimings = field(default_factory=AutoscaleTimings)
    #: The limits on the wire of both ports (timeouts, connection cap, anonymous body cap, proxy headers).
    wire: WireLimits = field(default_factory=WireLimits)
    #: What backends find in ``BackendServices.extra`` from the start (before any init runs): tests
    #: hand ComfyUI backends their timings and restart policy this way.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def backends_path(self) -> Path:
        return self.backends_file or self.data_dir / "Backends.fds"

    @property
    def settings_path(self) -> Path:
        return self.settings_file or self.data_dir / "Settings.fds"

    @property
    def db_path(self) -> Path | str:
        return ":memory:" if self.no_persist else self.data_dir / "swarmkeeper.db"


@dataclass(frozen=True)
class BackendsSettings:
    MaxBackendInitAttempts: int = integer(3, "How many times to retry initializing a backend before giving up. "
                                             "Default is 3.")
    MaxTimeoutMinutes: int = integer(
        120, "Safety check, the maximum duration all requests can be waiting for a backend before the system "
             "declares a backend handling failure.")
    PerRequestTimeoutMinutes: int = integer(
        10080, "The maximum duration an individual request can be waiting on a backend to be available before "
               "giving up.\nDefaults to 60 * 24 * 7 = 1 week (ultra-long max queue duration).")
    MaxRequestsForcedOrder: int = integer(
        20, "The maximum number of pending requests to continue forcing orderly processing of.")
    UnrestrictedMaxT2iSimultaneous: bool = boolean(
        False, "If true, max t2i simultaneous value is not limited by backend count.")
    ClearVRAMAfterMinutes: float = decimal(
        10, "How many minutes to wait after the last generation before automatically freeing up VRAM.\n"
            "Defaults to 10 minutes.\nSet to -1 to disable.")
    ClearSystemRAMAfterMinutes: float = decimal(
        60, "How many minutes to wait after the last generation before automatically freeing up system RAM.\n"
            "Defaults to 60 minutes (one hour).\nSet to -1 to disable.")
    AlwaysRefreshOnLoad: bool = boolean(True, "If true, any time you load the UI, trigger a server refresh.")
    ModelLoadOrderPreference: str = dropdown(
        "last_used", "Preference for order of backend selection when loading a new model.\n"
                     "Defaults to Last Used.", [("last_used", "Last Used"), ("first_free", "First Free")])
    AllBackendsLoadFast: bool = boolean(
        False, "If true, every backend initializes at once instead of self-starting ones one at a time.")
    ForceRestartOnTimeout: bool = boolean(
        False, "If true, when no backend has answered for MaxTimeoutMinutes, restart every backend instead of "
               "failing the waiting requests.")
    SchedulingStrategy: str = dropdown(
        "swarmui", "(swarmkeeper) Which free backend takes a generation.\n'swarmui': SwarmUI's rule (a backend that "
                   "has the model loaded first, then the fewest jobs, then the lowest ID).\n'least_busy': the fewest "
                   "jobs in flight first, even if another backend has the model loaded.",
        [("swarmui", "SwarmUI"), ("least_busy", "Least Busy")])


@dataclass(frozen=True)
class NetworkSettings:
    BackendStartingPort: int = integer(
        7820, "Backends are automatically assigned unique ports. This value selects which port number to start "
              "the assignment from.\nDefault is '7820'.")
    BackendPortRandomize: bool = boolean(
        False, "If enabled, backend starting port will be randomly offset at each restart.")
    AuthBypassIPs: str = text(
        "127.0.0.1,::1,::ffff:127.0.0.1", "Any IPs that can bypass network-authorization requirements, as a "
                                          "comma-separated list.")
    RequiredAuthorization: str = text(
        "", "If set, every request must carry an 'Authorization' header equal to this value.", secret=True)
    MaxNetworkRequestMegabytes: int = integer(
        200, "Maximum size, in megabytes, of a request body the server accepts.")


@dataclass(frozen=True)
class UserAuthorizationSettings:
    AuthorizationRequired: bool = boolean(
        False, "If true, users must log in (or use an API key) to use the server. If false, everyone who can connect "
               "is the local owner.\nDefaults to false. The --require_accounts flag turns it on too.")
    AllowLocalhostBypass: bool = boolean(
        True, "If true, a direct connection from localhost (no X-Forwarded-For header) can bypass login "
              "requirements.\nSet false behind a reverse proxy on the same machine.\nDefaults to true.")
    LoginTokenDays: float = decimal(
        30, "(swarmkeeper) How many days a login (the swarm_token cookie) stays valid.\nDefaults to 30.")


SECTIONS: dict[str, tuple[type, str]] = {
    "Network": (NetworkSettings, "Settings related to networking and the webserver."),
    "Backends": (BackendsSettings, "Settings related to backends."),
    "UserAuthorization": (UserAuthorizationSettings, "Settings related to user accounts and logins."),
}


@dataclass(frozen=True)
class ServerSettings:
    backends: BackendsSettings = field(default_factory=BackendsSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    userauthorization: UserAuthorizationSettings = field(default_factory=UserAuthorizationSettings)

    @classmethod
    def load(cls, path: Path, *, write_default: bool = True) -> ServerSettings:
        """Read Settings.fds, or write a default one when there is none (unless ``write_default`` is
        off: --no_persist); DataFileError when the file is there but cannot be used as it is (it is
        left untouched)."""
        raw = read_text(path)
        if raw is None:
            settings = cls()
            if not write_default:
                return settings
            try:
                write_atomic(path, fds.dumps(settings.to_fds()))
            except OSError as error:
                raise DataFileError(path, f"cannot be written ({error.strerror or error})") from error
            return settings
        try:
            root = fds.loads(raw)
        except fds.FDSError as error:
            raise DataFileError(path, str(error).removeprefix(f"FDS line {error.line}: "), error.line) from error
        file = _SettingsText(path, raw)
        return cls(**{name.lower(): file.section(root, name, settings_class)
                      for name, (settings_class, _) in SECTIONS.items()})

    def to_fds(self) -> fds.Section:
        root = fds.Section()
        for name, (settings_class, comment) in SECTIONS.items():
            root.set(name, schema_of(settings_class).to_fds(getattr(self, name.lower())), comments=[comment])
        return root


@dataclass(frozen=True)
class _SettingsText:
    """A parsed Settings.fds' known sections, read strictly; errors name the line they come from."""

    path: Path
    text: str

    def section(self, root: fds.Section, name: str, settings_class: type[Any]) -> Any:
        schema = schema_of(settings_class)
        stored = root.get(name)
        if stored is None:
            return schema.defaults()
        if not isinstance(stored, fds.Section):
            raise DataFileError(self.path, f"'{name}' must be a section of settings, not a value", self.line_of(name))
        changes: dict[str, Any] = {}
        for key, value in stored.items():
            if key not in schema.by_name:
                continue  # SwarmUI's own settings: kept in the file, not used here
            if isinstance(value, (fds.Section, list, bytes)):
                raise DataFileError(self.path, f"setting {name}.{key} must be a single value (write \\x for empty "
                                               "text)", self.line_of(name, key))
            try:
                changes[key] = schema.by_name[key].coerce(value)
            except SettingsError as error:
                raise DataFileError(self.path, f"{name}.{key}: {error.message}", self.line_of(name, key)) from error
        return dataclasses.replace(schema.defaults(), **changes)

    def line_of(self, section: str, key: str | None = None) -> int | None:
        """The 1-based line of a top-level section, or of a key inside it (None if not found)."""
        inside = False
        for number, line in enumerate(self.text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if line[0] not in " \t":
                inside = stripped.startswith(f"{section}:")
                if inside and key is None:
                    return number
            elif inside and key is not None and stripped.startswith((f"{key}:", f"{key}=")):
                return number
        return None
