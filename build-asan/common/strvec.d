build-asan/common/strvec.o: common/strvec.c common/strvec.h \
 common/xalloc.h
common/strvec.h:
common/xalloc.h:
