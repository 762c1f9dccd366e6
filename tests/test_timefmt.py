import pytest

from swarmkeeper.timefmt import time_since


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "Never"),
    (0.4, "0 seconds from now"),
    (1, "1 second ago"),
    (12.9, "12 seconds ago"),
    (60, "1 minute ago"),
    (65, "1 minute and 5 seconds ago"),
    (181, "3 minutes and 1 second ago"),
    (7200, "2 hours ago"),
    (7260, "2 hours and 1 minute ago"),
    (86400 + 4 * 3600, "1 day and 4 hours ago"),
    (2 * 86400 + 59, "2 days ago"),
    (365 * 86400 + 86400, "1 year and 1 day ago"),
])
def test_swarmui_wording(seconds: float | None, text: str) -> None:
    assert time_since(seconds) == text
