build-asan/common/jkpath.o: common/jkpath.c common/jkpath.h \
 common/jenkins.h common/strvec.h common/buf.h common/xalloc.h
common/jkpath.h:
common/jenkins.h:
common/strvec.h:
common/buf.h:
common/xalloc.h:
