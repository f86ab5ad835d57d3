build-asan/common/http.o: common/http.c common/http.h common/buf.h \
 common/jenkins.h common/strvec.h common/errmsg.h common/jkmodel.h \
 common/log.h common/xalloc.h
common/http.h:
common/buf.h:
common/jenkins.h:
common/strvec.h:
common/errmsg.h:
common/jkmodel.h:
common/log.h:
common/xalloc.h:
