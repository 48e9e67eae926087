/* Internal to transport/grpc: Abseil settings for gRPC core (absl_tune.cc).
 * Call once, before grpc_init and before any other thread uses core. */
#ifndef GP_GRPC_ABSL_TUNE_H
#define GP_GRPC_ABSL_TUNE_H

#ifdef __cplusplus
extern "C" {
#endif

/* absl::Mutex deadlock detection off (Debian's Abseil has it on). */
void gp__grpc_absl_tune(void);

#ifdef __cplusplus
}
#endif

#endif
