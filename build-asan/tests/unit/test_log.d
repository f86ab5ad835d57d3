build-asan/tests/unit/test_log.o: tests/unit/test_log.c common/log.h
common/log.h:
