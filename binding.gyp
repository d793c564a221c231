{
  # LIBTORCH points the build at any libtorch (a CUDA build included): a folder with include/ and lib/.
  # Unset, the build uses Debian's libtorch-dev from the default paths.
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")",
    # Debian's libtorch runs its convolutions on the system oneDNN (libdnnl.so.2); with its
    # headers (libdnnl-dev) the fused inference convolutions are built against the same library.
    # A libtorch from elsewhere carries its own oneDNN inside, so they are left out there.
    "dnnl%": "<!(node -p \"!process.env.LIBTORCH && require('fs').existsSync('/usr/include/dnnl.hpp') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "convkit",
      "sources": ["native/tensor.cc", "native/ops.cc", "native/nn_ops.cc", "native/allocator.cc", "native/fast_grads.cc", "native/fused_optim.cc", "native/batch_norm.cc", "native/conv2d.cc", "native/depthwise_wgrad.cc", "native/logging.cc", "native/fused_conv.cc", "native/distributed.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      # -fno-math-errno: a loop calling sqrtf (Adam's) vectorises only without errno, and GCC
      # ignores the flag as a function attribute.
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-fno-math-errno", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "conditions": [
        ["dnnl==1", {
          "defines": ["CONVKIT_DNNL"],
          "libraries": ["-ldnnl"]
        }],
        # Debian's libtorch threads on libgomp: the own kernels' at::parallel_for is a header
        # template that runs on one thread unless this build is an OpenMP one as well.
        ["libtorch==''", {
          "include_dirs": ["/usr/include/torch/csrc/api/include", "native/compat"],
          "cflags_cc": ["-fopenmp"],
          "ldflags": ["-fopenmp"],
          "libraries": ["-ltorch", "-ltorch_cpu", "-lc10"]
        }, {
          "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
          "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib", "-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,--as-needed"],
          "defines": ["_GLIBCXX_USE_CXX11_ABI=<!(node -p \"process.env.LIBTORCH_CXX11_ABI || '1'\")"]
        }]
      ]
    }
  ]
}
