build-asan/common/errmsg.o: common/errmsg.c common/errmsg.h
common/errmsg.h:
