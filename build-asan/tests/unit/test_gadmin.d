build-asan/tests/unit/test_gadmin.o: tests/unit/test_gadmin.c \
 common/backoff.h common/gadmin.h common/gwconn.h common/clock.h
common/backoff.h:
common/gadmin.h:
common/gwconn.h:
common/clock.h:
