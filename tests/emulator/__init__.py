"""Local GitHub REST API emulator (test equipment; the product never imports it).

    with GitHubEmulator() as emu:
        emu.add_token("t", kind="actions", repo_permissions={"o/r": {"issues": "write"}})
        emu.add_repo("o/r")
        gh = github.Github(auth=github.Auth.Token("t"), base_url=emu.url)

See tests/emulator/README.md for the endpoint list, token model and fault kinds.
"""

from .faults import FAULT_KINDS, Fault
from .server import GitHubEmulator, RequestRecord

__all__ = ["FAULT_KINDS", "Fault", "GitHubEmulator", "RequestRecord"]
