#!/bin/sh
# A protoc plugin that saves the CodeGeneratorRequest it is given (the fuzz
# seeds in corpus/ came from it) and answers with an empty response:
#   CAPTURE_TO=corpus/x_request.bin protoc -I. -I/usr/include \
#       --plugin=protoc-gen-capture=codegen/protoc-gen-goplugin-c/testdata/capture_request.sh \
#       --capture_out=/tmp codegen/protoc-gen-goplugin-c/testdata/x.proto
# (protoc then complains about proto3 optional fields, after the capture.)
cat >"${CAPTURE_TO:?set CAPTURE_TO to the file to write}"
