/* Fuzz: bytes as protoc's CodeGeneratorRequest; whatever decodes goes
 * through both emitters (C pair and .options). Nothing may crash or leak. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp__cg_request req;
    gp__strbuf err;
    gp__strbuf_init(&err);
    if (gp__cg_request_decode(data, size, &req, &err) == GP_OK) {
        for (int mode = 0; mode < 2; mode++) {
            char *saved = req.parameter;
            if (mode == 1)
                req.parameter = "options";
            gp__cg_response resp;
            gp__cg_generate(&req, &resp);
            gp__cg_response_free(&resp);
            req.parameter = saved;
        }
        gp__cg_request_free(&req);
    }
    gp__strbuf_free(&err);
    return 0;
}
