/* The C side of the reattach interop test (reattach_interop_test.sh).
 *
 *   reattach_tool write FILE PROTO NET ADDR PID VERSION TEST
 *   reattach_tool read FILE      -> one line of fields, as reattach_go prints
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goplugin/supervise.h>

int main(int argc, char **argv)
{
    gp_status st = {0};
    if (argc == 9 && strcmp(argv[1], "write") == 0) {
        gp_reattach_config rc = {
            .protocol = strcmp(argv[3], "grpc") == 0     ? GP_PROTO_GRPC
                        : strcmp(argv[3], "netrpc") == 0 ? GP_PROTO_NETRPC
                                                         : GP_PROTO_NONE,
            .network = argv[4],
            .address = argv[5],
            .pid = atoi(argv[6]),
            .protocol_version = (unsigned)atoi(argv[7]),
            .test = strcmp(argv[8], "true") == 0,
        };
        if (gp_reattach_file_write(argv[2], &rc, &st) != GP_OK) {
            fprintf(stderr, "%s\n", st.msg);
            return 1;
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "read") == 0) {
        gp_reattach_config rc;
        if (gp_reattach_file_read(argv[2], &rc, &st) != GP_OK) {
            fprintf(stderr, "%s\n", st.msg);
            return 1;
        }
        printf("protocol=%s network=%s addr=%s pid=%d version=%u test=%s\n",
               rc.protocol == GP_PROTO_GRPC     ? "grpc"
               : rc.protocol == GP_PROTO_NETRPC ? "netrpc"
                                                : "",
               rc.network, rc.address, (int)rc.pid, rc.protocol_version,
               rc.test ? "true" : "false");
        gp_reattach_config_clear(&rc);
        return 0;
    }
    fprintf(stderr,
            "usage: reattach_tool write FILE PROTO NET ADDR PID VERSION TEST | read FILE\n");
    return 2;
}
