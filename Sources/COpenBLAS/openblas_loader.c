#define _GNU_SOURCE
#include "COpenBLAS.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static leep_blas loaded;
static const leep_blas *result;
static char error[1024];
static char path[4096];
static char corename_source[160];

/// The OpenBLAS core type (OPENBLAS_CORETYPE) whose double-precision kernels are the fastest
/// this CPU can run, judged by its features rather than its model number, or NULL to leave the
/// choice to the library. For doubles, OpenBLAS's Cooperlake and SapphireRapids targets run the
/// SkylakeX kernels, so SkylakeX is the best AVX-512 answer whatever the library's version.
static const char *core_type_from_features(const char **reason) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        *reason = "AVX-512 F/BW/VL/DQ";
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *reason = "AVX2 and FMA";
        return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
    }
#endif
    (void)reason;
    return NULL;
}

static int resolve(void *handle, const char *name, void **slot) {
    *slot = dlsym(handle, name);
    if (*slot == NULL) {
        snprintf(error, sizeof error, "%s has no symbol %s: not an OpenBLAS with LAPACK", path, name);
        return 0;
    }
    return 1;
}

static void *open_library(void) {
    const char *chosen = getenv("LEEP_BLAS_LIBRARY");
    if (chosen != NULL && chosen[0] != '\0') {
        void *handle = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL)
            snprintf(error, sizeof error, "cannot load LEEP_BLAS_LIBRARY=%s: %s", chosen, dlerror());
        return handle;
    }
    // Debian's pthreads build, named by its folder: libopenblas.so.0 itself is an alternative
    // that may point at the single-threaded build, which cannot be called from two threads.
    static const char *const candidates[] = {
#if defined(__x86_64__)
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
#elif defined(__aarch64__)
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
#endif
        "libopenblas.so.0",
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (handle != NULL) return handle;
        snprintf(error, sizeof error,
                 "cannot load OpenBLAS (%s): %s; install it (Debian: apt install libopenblas0-pthread, "
                 "as ops/setup does) or name the library in LEEP_BLAS_LIBRARY",
                 candidates[i], dlerror());
    }
    return NULL;
}

/// Sets `name` to `value` unless the environment already has it; says whether it did.
static int set_unless_present(const char *name, const char *value) {
    if (getenv(name) != NULL) return 0;
    setenv(name, value, 0);
    return 1;
}

static void load_once(void) {
    const char *reason = NULL;
    const char *core_type = core_type_from_features(&reason);
    int set_core_type = 0;
    if (getenv("OPENBLAS_CORETYPE") != NULL) {
        snprintf(corename_source, sizeof corename_source, "OPENBLAS_CORETYPE=%s from the environment",
                 getenv("OPENBLAS_CORETYPE"));
    } else if (core_type != NULL) {
        set_core_type = set_unless_present("OPENBLAS_CORETYPE", core_type);
        snprintf(corename_source, sizeof corename_source, "chosen from the CPU's features (%s)", reason);
    } else {
        snprintf(corename_source, sizeof corename_source, "the library's own choice");
    }
    // The library reads both variables in its constructor, during dlopen; they are taken back
    // afterwards so that child processes see the environment they were given.
    int set_threads = set_unless_present("OPENBLAS_NUM_THREADS", "1");
    void *handle = open_library();
    if (set_core_type) unsetenv("OPENBLAS_CORETYPE");
    if (set_threads) unsetenv("OPENBLAS_NUM_THREADS");
    if (handle == NULL) return;

    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != NULL && map->l_name != NULL)
        snprintf(path, sizeof path, "%s", map->l_name);
    else
        snprintf(path, sizeof path, "(unknown path)");
    loaded.path = path;

    char *(*get_config)(void);
    char *(*get_corename)(void);
    int (*get_parallel)(void);
    if (!(resolve(handle, "cblas_dgemm", (void **)&loaded.dgemm) &&
          resolve(handle, "cblas_dgemv", (void **)&loaded.dgemv) &&
          resolve(handle, "cblas_dsymv", (void **)&loaded.dsymv) &&
          resolve(handle, "cblas_dsyr", (void **)&loaded.dsyr) &&
          resolve(handle, "cblas_dsyrk", (void **)&loaded.dsyrk) &&
          resolve(handle, "dsytrd_", (void **)&loaded.dsytrd) &&
          resolve(handle, "dormtr_", (void **)&loaded.dormtr) &&
          resolve(handle, "dstevr_", (void **)&loaded.dstevr) &&
          resolve(handle, "dpotrf_", (void **)&loaded.dpotrf) &&
          resolve(handle, "dpotrs_", (void **)&loaded.dpotrs) &&
          resolve(handle, "dpocon_", (void **)&loaded.dpocon) &&
          resolve(handle, "openblas_get_config", (void **)&get_config) &&
          resolve(handle, "openblas_get_corename", (void **)&get_corename) &&
          resolve(handle, "openblas_get_parallel", (void **)&get_parallel)))
        return;
    loaded.config = get_config();
    loaded.corename = get_corename();
    loaded.corename_source = corename_source;
    loaded.parallel = get_parallel();
    result = &loaded;
}

const leep_blas *leep_blas_load(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_once);
    return result;
}

const char *leep_blas_error(void) { return error; }

const leep_blas *leep_blas_load_or_exit(void) {
    const leep_blas *library = leep_blas_load();
    if (library != NULL) return library;
    fprintf(stderr, "leep: %s\n", error);
    exit(69);
}
