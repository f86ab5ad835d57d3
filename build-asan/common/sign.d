build-asan/common/sign.o: common/sign.c common/sign.h common/log.h \
 common/secret.h common/xalloc.h
common/sign.h:
common/log.h:
common/secret.h:
common/xalloc.h:
