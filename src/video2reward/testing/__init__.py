"""Generated inputs for tests and benchmarks (like numpy.testing): `synthetic`, tiny videos of a moving square
whose x position is its progress; `bad_videos`, damaged and unusual video files with what v2r must make of each.
Imported by tests/ and bench/; nothing else in the package imports it."""
