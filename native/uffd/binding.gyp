{
  "targets": [
    {
      "target_name": "waterbear_uffd",
      "sources": ["src/uffd.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/uffd.c"], "sources": ["src/unsupported.c"] }]
      ]
    },
    {
      "target_name": "waterbear_crc32c",
      "sources": ["src/crc32c.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-pthread"],
      "ldflags": ["-pthread"]
    },
    {
      "target_name": "waterbear_populate",
      "sources": ["src/populate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
