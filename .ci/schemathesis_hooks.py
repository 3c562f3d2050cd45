"""schemathesis hooks for Gatehouse: plugin uploads are raw component bytes."""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
