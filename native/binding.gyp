{
  "targets": [
    {
      "target_name": "meshd_native",
      "conditions": [
        ["OS=='linux'", { "sources": ["meshd_native.c"] }, { "sources": ["meshd_native_stub.c"] }]
      ],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
