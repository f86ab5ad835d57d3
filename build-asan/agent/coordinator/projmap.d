build-asan/agent/coordinator/projmap.o: agent/coordinator/projmap.c \
 agent/coordinator/projmap.h common/config.h common/jenkins.h \
 common/strvec.h common/buf.h common/label.h common/strvec.h \
 common/xalloc.h
agent/coordinator/projmap.h:
common/config.h:
common/jenkins.h:
common/strvec.h:
common/buf.h:
common/label.h:
common/strvec.h:
common/xalloc.h:
