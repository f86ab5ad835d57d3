build-asan/tests/unit/test_params.o: tests/unit/test_params.c \
 common/gwconn.h common/params.h
common/gwconn.h:
common/params.h:
