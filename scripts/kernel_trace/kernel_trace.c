// In-stream kernel trace for any CUDA process, without nsys: a CUDA injection library.
//
//   CUDA_INJECTION64_PATH=/path/libkernel_trace.so KERNEL_TRACE_FILE=trace.tsv
//   KERNEL_TRACE_CUPTI=/path/libcupti.so.12 ./program ...
//
// The driver loads the library named by CUDA_INJECTION64_PATH at cuInit and calls its
// `InitializeInjection`; it turns on CUPTI's activity records for kernels, memcpy and memset
// (start/end stamped by the GPU, so the times are the ones in the stream, not synchronised
// per-launch times) and writes one line per record at exit:
//   kind \t start_ns \t end_ns \t stream \t grid \t block \t name
// CUPTI is opened with dlopen (path from KERNEL_TRACE_CUPTI, else the soname) so one build
// works with whatever CUPTI the GPU machine has (torch's wheels ship one).
// Build: gcc -O2 -shared -fPIC -I<cupti include> -I<cuda include> kernel_trace.c -ldl -o libkernel_trace.so
#include <cupti_activity.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CUptiResult (*register_fn)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
typedef CUptiResult (*enable_fn)(CUpti_ActivityKind);
typedef CUptiResult (*next_fn)(uint8_t *, size_t, CUpti_Activity **);
typedef CUptiResult (*flush_fn)(uint32_t);
typedef CUptiResult (*dropped_fn)(CUcontext, uint32_t, size_t *);

static next_fn activity_next;
static flush_fn activity_flush;
static dropped_fn activity_dropped;
static FILE *out;
static unsigned long long records, dropped;

#define BUFFER_BYTES (8u << 20)

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    // CUPTI wants 8-byte aligned buffers
    *buffer = aligned_alloc(8, BUFFER_BYTES);
    *size = *buffer ? BUFFER_BYTES : 0;
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    (void)size;
    CUpti_Activity *record = NULL;
    size_t lost = 0;
    // records CUPTI could not store (buffers full): a trace with gaps must say so
    if (activity_dropped && activity_dropped(ctx, stream, &lost) == CUPTI_SUCCESS)
        dropped += lost;
    while (out && activity_next(buffer, valid, &record) == CUPTI_SUCCESS) {
        records++;
        switch (record->kind) {
        case CUPTI_ACTIVITY_KIND_KERNEL:
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
            // the fields read here sit in the prefix every CUpti_ActivityKernelN shares
            CUpti_ActivityKernel4 *k = (CUpti_ActivityKernel4 *)record;
            fprintf(out, "kernel\t%llu\t%llu\t%u\t%dx%dx%d\t%dx%dx%d\t%s\n", (unsigned long long)k->start,
                    (unsigned long long)k->end, k->streamId, k->gridX, k->gridY, k->gridZ, k->blockX, k->blockY,
                    k->blockZ, k->name ? k->name : "?");
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY: {
            CUpti_ActivityMemcpy *m = (CUpti_ActivityMemcpy *)record;
            fprintf(out, "memcpy\t%llu\t%llu\t%u\t-\t-\tmemcpy kind %u, %llu bytes\n", (unsigned long long)m->start,
                    (unsigned long long)m->end, m->streamId, (unsigned)m->copyKind, (unsigned long long)m->bytes);
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMSET: {
            CUpti_ActivityMemset *m = (CUpti_ActivityMemset *)record;
            fprintf(out, "memset\t%llu\t%llu\t%u\t-\t-\tmemset %llu bytes\n", (unsigned long long)m->start,
                    (unsigned long long)m->end, m->streamId, (unsigned long long)m->bytes);
            break;
        }
        default:
            break;
        }
    }
    free(buffer);
}

static void finish(void) {
    if (activity_flush)
        activity_flush(1);
    if (out) {
        fprintf(stderr, "kernel_trace: %llu records written, %llu dropped\n", records, dropped);
        fclose(out);
        out = NULL;
    }
}

int InitializeInjection(void) {
    const char *path = getenv("KERNEL_TRACE_FILE");
    const char *lib = getenv("KERNEL_TRACE_CUPTI");
    void *cupti = dlopen(lib ? lib : "libcupti.so", RTLD_NOW | RTLD_GLOBAL);
    if (!cupti) {
        fprintf(stderr, "kernel_trace: cannot open CUPTI (%s): %s\n", lib ? lib : "libcupti.so", dlerror());
        return 0;
    }
    register_fn reg = (register_fn)dlsym(cupti, "cuptiActivityRegisterCallbacks");
    enable_fn enable = (enable_fn)dlsym(cupti, "cuptiActivityEnable");
    activity_next = (next_fn)dlsym(cupti, "cuptiActivityGetNextRecord");
    activity_flush = (flush_fn)dlsym(cupti, "cuptiActivityFlushAll");
    activity_dropped = (dropped_fn)dlsym(cupti, "cuptiActivityGetNumDroppedRecords");
    if (!reg || !enable || !activity_next || !activity_flush) {
        fprintf(stderr, "kernel_trace: CUPTI lacks the activity API\n");
        return 0;
    }
    out = fopen(path ? path : "kernel_trace.tsv", "w");
    if (!out) {
        perror("kernel_trace: output file");
        return 0;
    }
    int failed = reg(buffer_requested, buffer_completed) != CUPTI_SUCCESS;
    failed |= enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS;
    failed |= enable(CUPTI_ACTIVITY_KIND_MEMCPY) != CUPTI_SUCCESS;
    failed |= enable(CUPTI_ACTIVITY_KIND_MEMSET) != CUPTI_SUCCESS;
    if (failed)
        fprintf(stderr, "kernel_trace: enabling CUPTI activity records failed\n");
    atexit(finish);
    return 1;
}
