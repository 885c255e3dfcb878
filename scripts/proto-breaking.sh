#!/bin/sh
# `buf breaking` on specs/llm.proto against its version at the last landed commit, which specs/llm.proto.landed
# names (a session that lands moves it). $1 is the buf binary; tox's lint env passes the one it installed.
exec "$1" breaking --against ".git#ref=$(cat specs/llm.proto.landed),subdir=specs"
