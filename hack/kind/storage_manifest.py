"""Print kind's default storage manifest (local-path-provisioner) from kind's own source.

`kind build node-image` writes this manifest into the node image; it cannot run offline, so
hack/kind/prepare.sh assembles the node itself and takes the manifest from the same Go constant.
"""

import re
import sys
from pathlib import Path

source = Path(sys.argv[1]).read_text()
constants = dict(re.findall(r'const (\w+) = "([^"]*)"', source))
match = re.search(r"const defaultStorageManifest = `(.*?)\n`", source, re.S)
if match is None:
    sys.exit(f"no defaultStorageManifest in {sys.argv[1]}: has kind's source layout changed?")
body = re.sub(r"` \+ (\w+) \+ `", lambda m: constants[m.group(1)], match.group(1) + "\n")
sys.stdout.write(body)
