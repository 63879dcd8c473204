{
  "targets": [
    {
      "target_name": "porthole_tunnel",
      "sources": ["native/addon.c", "native/loop.c", "native/frames.c", "native/bridge.c", "native/front.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "libraries": ["-ldl"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
