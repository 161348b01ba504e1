"""tw-gates: GitHub Actions-native security gates for the Token Warehouse."""

from pathlib import Path

# The one version source: the package, the release tag (v<version>) and CHANGELOG.md agree.
__version__ = "3.0.0"

# Everything the package reads at run time ships inside it: the pattern catalog,
# the canary defaults, the adversarial corpora, the report templates and the
# actions' definitions (the last three are links to the repository's top-level
# folders, which stay their one source; a wheel carries copies).
DATA_DIR = Path(__file__).resolve().parent / "data"
