"""Shared pieces of the benchmarks built from downloaded files (SeCOCO, SeViGe), one module per job.

A file benchmark's loader reads the dataset's annotation files, assigns images to
tasks and splits and picks their captions (giving `Candidate`s), then
`tasks.assemble` attaches each image's encoder input:

- `reading`: paths, JSON and required fields; every missing or malformed input is a
  `DataError` naming the file and the fix (a ConfigError, so the command line
  reports it and exits with status 2); the per-source index cache.
- `images`: mode "images", the image files decoded with PIL and the cached scan
  for images that do not decode.
- `prepared`: the prepared image store (`ccrbench data prepare`): each split's images decoded
  once at the run's size into a memory-mapped uint8 array, read by mode "images" when up to date.
- `precomp`: mode "features", rows of a precomputed feature array in the VSE++
  precomp layout, memory-mapped.
- `tasks`: candidates, exclusions, the per-task splits (`TaskData`) and their summary.

File benchmarks are registered with `ccrbench.registry.register_file_benchmark`.
"""
