"""The ``comfyui_api`` backend type: a ComfyUI that is already running somewhere, by URL
(reference §8.2, §9.2)."""

from __future__ import annotations

from dataclasses import dataclass

from swarmkeeper.backends.base import BackendType
from swarmkeeper.backends.comfyui_common import ComfyUIBackend, max_usages_for
from swarmkeeper.backends.settings import boolean, integer, text
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.clients.comfyui import Address
from swarmkeeper.clients.errors import ComfyError, ComfyTimeout, ComfyUnreachable
from swarmkeeper.exceptions import BackendConfigError, BackendInitError


@dataclass(frozen=True)
class ComfyUIAPISettings:
    Address: str = text("", "The address of the ComfyUI instance, eg 'http://localhost:8188'.",
                        placeholder="ComfyUI's address...")
    AllowIdle: bool = boolean(
        False, "Whether the backend is allowed to revert to an 'idle' state if the API address is unresponsive.\n"
               "An idle state is not considered an error, but cannot generate.\n"
               "It will automatically return to 'running' if the API becomes available.")
    OverQueue: int = integer(1, "How many extra requests may queue up on this backend while one is processing.")
    EnableFrontendDev: bool = boolean(
        False, "If true, the backend address will use '/api/' for API calls to enable passthrough of a frontend "
               "NPM dev server.")


def api_url_for(settings: ComfyUIAPISettings) -> str:
    """``Address`` without its trailing ``/``, plus ``/api`` with EnableFrontendDev; a
    BackendConfigError naming the setting when it is not an http(s) URL."""
    try:
        url = Address(settings.Address).url
    except ValueError as error:
        raise BackendConfigError(f"Address setting: {error}") from None
    return url + "/api" if settings.EnableFrontendDev else url


class ComfyUIAPIBackend(ComfyUIBackend[ComfyUIAPISettings]):
    async def init(self) -> None:
        settings = self.settings
        self.max_usages = max_usages_for(settings.OverQueue)
        await self.close()
        self.forget_object_info()
        if not settings.Address.strip():
            self.host.set_status(BackendStatus.DISABLED, "No address is set: put ComfyUI's address (eg "
                                                         "http://localhost:8188) in the Address setting.")
            return
        try:
            url = api_url_for(settings)
        except BackendConfigError as error:
            self.host.log.error("%s", error)
            raise
        await self.connect(url)
        self.host.set_status(BackendStatus.LOADING, f"Connecting to ComfyUI at {self.api_url}...")
        try:
            await self.reload_object_info()
        except (ComfyUnreachable, ComfyTimeout) as error:
            if not settings.AllowIdle:
                raise self._init_error(error) from None
            self.start_monitor(allow_idle=True, lost_reason=error.message)
            return
        except ComfyError as error:
            raise self._init_error(error) from None
        self.host.set_status(BackendStatus.RUNNING, "")
        self.start_monitor(allow_idle=settings.AllowIdle)

    def _init_error(self, error: ComfyError) -> BackendInitError:
        """Retried by the lifecycle; said in the backend's own log too."""
        reason = f"ComfyUI at {self.api_url}: {error.message}"
        self.host.log.warning("%s", reason)
        return BackendInitError(reason)

    async def shutdown(self) -> None:
        await self.close()
        self.forget_object_info()


COMFYUI_API = BackendType(
    id="comfyui_api", name="ComfyUI API By URL",
    description="A backend powered by a pre-existing installation of ComfyUI, referenced via API base URL.",
    settings_class=ComfyUIAPISettings, factory=ComfyUIAPIBackend, fast_load=True, standard=False)
