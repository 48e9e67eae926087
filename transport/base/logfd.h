/* Internal: where gp_log_text_stderr and gp_log_json_stderr write (fd 2
 * by default). gp_serve points them at the real stderr while it forwards
 * fd 2 over GRPCStdio (plugin/serve_stdio.c), so its hclog lines still
 * reach the host's log parser. */
#ifndef GP_BASE_LOGFD_H
#define GP_BASE_LOGFD_H

/* fd < 0: back to 2. Thread safety: any thread. */
void gp__log_set_stderr_fd(int fd);

#endif
