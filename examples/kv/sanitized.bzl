"""unless_sanitized: what the example plugins add outside the sanitizer
configurations of .bazelrc (their runtimes cannot be linked static)."""

def unless_sanitized(opts):
    """opts, or nothing under --config=asan, ubsan, tsan or fuzz."""
    return select({
        "//examples/kv:sanitizer_asan": [],
        "//examples/kv:sanitizer_ubsan": [],
        "//examples/kv:sanitizer_tsan": [],
        "//examples/kv:sanitizer_fuzz": [],
        "//conditions:default": opts,
    })
