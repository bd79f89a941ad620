{
  "targets": [
    {
      "target_name": "sendfile",
      "sources": ["sendfile.c", "../common/engine.h"],
      "include_dirs": ["../common"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
