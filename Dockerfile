# One image for both long-running receivers: the Pub/Sub push receiver
# (fedsync-pubsub-push) and the webhook (fedsync-webhook: change notices, Event
# Grid, Vault events and the Vault audit stream). Build from the repository's root:
#
#   docker build -t fedsync .
#
# It runs the webhook by default; run the Pub/Sub receiver by naming it as the
# command, for example on Cloud Run:
#
#   gcloud run deploy fedsync-push --image IMAGE --command /fedsync-pubsub-push
#
# The final image holds the two stripped binaries, CA certificates and glibc
# (distroless), and runs as an unprivileged user. CI runs the build stage's
# cargo command (tests/run, "release build of the receivers").

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fedsync-pubsub-push -p fedsync-webhook \
 && cp target/release/fedsync-pubsub-push target/release/fedsync-webhook /

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /fedsync-pubsub-push /fedsync-webhook /
USER nonroot:nonroot
ENV PORT=8080 FEDSYNC_LOG=info
EXPOSE 8080
ENTRYPOINT ["/fedsync-webhook"]
