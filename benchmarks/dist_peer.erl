%% Erlang's side of benchmarks/bench_dist.py: the same helper processes as
%% benchmarks/_dist_peer.py, as erl nodes. Compiled by the benchmark with erlc
%% into a temporary directory. Lines on standard output; commands on standard
%% input, one a line; end of input stops the node.
%%
%%   rx()          sink, echo and a gen_server "server"; prints READY
%%   tx(RxNode)    commands "oneway N", "pingpong N", "call N": one JSON line each
%%   watcher()     command "watch NODE" -> UP NODE | FAIL NODE; prints
%%                 "DOWN NODE t=UNIX_SECONDS" when a watched node goes down
%%   victim()      prints READY, then "DOWN NODE" for every lost peer
-module(dist_peer).
-behaviour(gen_server).
-export([rx/0, tx/1, watcher/0, victim/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% -- the receiver / server node -------------------------------------------------

rx() ->
    register(sink, spawn(fun() -> sink(0) end)),
    register(echo, spawn(fun echo/0)),
    {ok, _} = gen_server:start({local, server}, ?MODULE, [], []),
    io:format("READY~n"),
    wait_eof().

sink(Count) ->
    receive
        {ping, _} -> sink(Count + 1);
        {'end', From} -> From ! {ack, Count}, sink(0);
        {hello, From} -> From ! {here, self()}, sink(Count)
    end.

echo() ->
    receive {From, Msg} -> From ! Msg, echo() end.

init([]) -> {ok, nostate}.
handle_call(Request, _From, State) -> {reply, Request, State}.
handle_cast(_Request, State) -> {noreply, State}.
handle_info(_Msg, State) -> {noreply, State}.

%% -- the sender / client node ---------------------------------------------------

tx(RxNode) ->
    pong = net_adm:ping(RxNode),
    {sink, RxNode} ! {hello, self()},
    Sink = receive {here, P} -> P after 10000 -> exit(no_sink) end,
    Echo = rpc:call(RxNode, erlang, whereis, [echo]),
    Server = rpc:call(RxNode, erlang, whereis, [server]),
    io:format("READY~n"),
    tx_loop(#{sink => Sink, echo => Echo, server => Server}).

tx_loop(Peers) ->
    case io:get_line('') of
        eof -> halt(0);
        Line ->
            [Cmd, NText] = string:tokens(string:trim(Line), " "),
            N = list_to_integer(NText),
            T0 = erlang:monotonic_time(),
            ok = run(Cmd, N, Peers),
            Ns = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, nanosecond),
            io:format("{\"seconds\": ~.9f, \"n\": ~b}~n", [Ns / 1.0e9, N]),
            tx_loop(Peers)
    end.

run("oneway", N, #{sink := Sink}) ->
    send_n(Sink, N),
    Sink ! {'end', self()},
    receive
        {ack, N} -> ok;
        {ack, Other} -> exit({lost, N - Other})
    after 120000 -> exit(no_ack)
    end;
run("pingpong", N, #{echo := Echo}) ->
    ping_pong(Echo, N);
run("call", N, #{server := Server}) ->
    call_n(Server, N).

send_n(_, 0) -> ok;
send_n(Pid, K) -> Pid ! {ping, K}, send_n(Pid, K - 1).

ping_pong(_, 0) -> ok;
ping_pong(Echo, K) ->
    Echo ! {self(), {ping, K}},
    receive {ping, K} -> ping_pong(Echo, K - 1) after 10000 -> exit(no_pong) end.

call_n(_, 0) -> ok;
call_n(Server, K) ->
    K = gen_server:call(Server, K),
    call_n(Server, K - 1).

%% -- node-down detection --------------------------------------------------------

watcher() ->
    Mon = spawn(fun watch_loop/0),
    io:format("READY~n"),
    watcher_input(Mon).

watcher_input(Mon) ->
    case io:get_line('') of
        eof -> halt(0);
        Line ->
            case string:tokens(string:trim(Line), " ") of
                ["watch", Name] -> Mon ! {watch, list_to_atom(Name)};
                _ -> ok
            end,
            watcher_input(Mon)
    end.

watch_loop() ->
    receive
        {watch, Node} ->
            case net_adm:ping(Node) of
                pong ->
                    erlang:monitor_node(Node, true),
                    io:format("UP ~s~n", [Node]);
                pang ->
                    io:format("FAIL ~s pang~n", [Node])
            end;
        {nodedown, Node} ->
            T = os:system_time(microsecond),
            io:format("DOWN ~s t=~b.~6..0b~n", [Node, T div 1000000, T rem 1000000])
    end,
    watch_loop().

victim() ->
    Self = self(),
    spawn(fun() -> net_kernel:monitor_nodes(true), Self ! monitoring, victim_loop() end),
    receive monitoring -> ok end,
    io:format("READY~n"),
    wait_eof().

victim_loop() ->
    receive
        {nodedown, Node} -> io:format("DOWN ~s~n", [Node]);
        _ -> ok
    end,
    victim_loop().

wait_eof() ->
    case io:get_line('') of
        eof -> halt(0);
        _ -> wait_eof()
    end.
