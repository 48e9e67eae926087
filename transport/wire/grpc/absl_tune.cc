// The one C++ file of the gRPC wire: settings of the Abseil that gRPC core
// is built on, which have no C API.
//
// Debian builds Abseil without NDEBUG, so absl::Mutex runs its deadlock
// detector on every lock: it records each lock in a per-thread list and a
// global lock graph. gRPC core takes dozens of mutexes per call; the
// detector was ~18% of a plugin's instructions per unary call (callgrind,
// docs/grpc.md "Measured"). It only reports lock-order cycles, which
// release builds of Abseil (NDEBUG) never check either.
#include <absl/synchronization/mutex.h>

#include "transport/wire/grpc/absl_tune.h"

extern "C" void gp__grpc_absl_tune(void)
{
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
