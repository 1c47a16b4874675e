"""A TLS terminator for a broker that cannot serve TLS itself (Tansu 0.6.0, see ops/broker):
accepts TLS connections on LISTEN_HOST:LISTEN_PORT and relays each, byte for byte, to the
broker's plaintext listener on TARGET_HOST:TARGET_PORT.

    python3 ops/lib/tls_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT CERT KEY

Runs until SIGTERM or SIGINT. Failed handshakes (plaintext or untrusting clients) are expected
and logged one line each to standard error. Standard library only: it runs on any python3.
"""

import asyncio
import signal
import ssl
import sys

async def relay(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.close()

def server(target_host, target_port):
    """The connection handler: opens a connection to the target and relays both ways."""
    async def serve(client_reader, client_writer):
        try:
            broker_reader, broker_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError as error:
            print(f"cannot reach the broker at {target_host}:{target_port}: {error}", file=sys.stderr, flush=True)
            client_writer.close()
            return
        await asyncio.gather(relay(client_reader, broker_writer), relay(broker_reader, client_writer))
    return serve

def report(loop, context):
    # Failed handshakes (plaintext or untrusting clients) are expected: one line each.
    message, error = context.get("message"), context.get("exception")
    print(f"{message}: {error!r}" if error else message, file=sys.stderr, flush=True)

async def main(listen_host, listen_port, target_host, target_port, cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(report)
    listener = await asyncio.start_server(server(target_host, target_port), listen_host, int(listen_port),
                                          ssl=context, ssl_handshake_timeout=10)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"TLS on {listen_host}:{listen_port}, relayed to {target_host}:{target_port}", file=sys.stderr, flush=True)
    await stop.wait()
    listener.close()


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit("usage: tls_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT CERT KEY")
    asyncio.run(main(*sys.argv[1:]))
