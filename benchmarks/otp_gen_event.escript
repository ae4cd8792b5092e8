#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% OTP's own gen_event on the scenarios of genevent's benchmark suite (benchmarks/_otp.py runs
%% it and parses its output). This module is its own trivial handler: -mode(compile) makes it a
%% real, loaded module, so gen_event can call back into it; many copies are {?MODULE, Id}.
%%
%% usage: escript otp_gen_event.escript NotifyEvents FanoutInvocations RoundTrips
%%                                      LatencySamples Reps ControlSamples
%%        escript otp_gen_event.escript mem_manager Managers
%%        escript otp_gen_event.escript mem_handler Handlers
%% prints one line per figure: "<name> <value> <unit>". A throughput figure prints one line per
%% run (every run counts: the caller takes their median and range, as for every system); a
%% latency figure prints the median of its pooled samples and, as "<name>:q1" and "<name>:q3",
%% their quartiles. Each memory figure is measured alone, in a VM of its own: a VM that has just
%% run the timing scenarios holds grown heaps and caches that blur a per-process figure.
-module(otp_gen_event).
-mode(compile).
-behaviour(gen_event).

-export([main/1]).
-export([init/1, handle_event/2, handle_call/2, handle_info/2, terminate/2, code_change/3]).

%% ------------------------------------------------------------------ the handler

init(_Args) -> {ok, 0}.
handle_event(_Event, N) -> {ok, N + 1}.
handle_call(_Request, N) -> {ok, N, N}.
handle_info(_Info, N) -> {ok, N}.
terminate(_Reason, _N) -> ok.
code_change(_OldVsn, N, _Extra) -> {ok, N}.

%% ------------------------------------------------------------------ main

main(["mem_manager", KS]) ->
    out(mem_manager, mem_per_manager(list_to_integer(KS)), bytes),
    halt(0);
main(["mem_handler", KS]) ->
    out(mem_handler, mem_per_handler(list_to_integer(KS)), bytes),
    halt(0);
main([NotifyS, FanoutS, RoundTripsS, LatencyS, RepsS, ControlS]) ->
    [Notify, Fanout, RoundTrips, Latency, Reps, Control] =
        [list_to_integer(A)
         || A <- [NotifyS, FanoutS, RoundTripsS, LatencyS, RepsS, ControlS]],
    out(otp_release, list_to_integer(erlang:system_info(otp_release)), release),
    out(schedulers, erlang:system_info(schedulers_online), count),
    lists:foreach(
      fun(K) ->
              N = case K of 1 -> Notify; _ -> max(Fanout div K, 10) end,
              runs(list_to_atom("notify_" ++ integer_to_list(K)), N * K, Reps,
                   fun() -> notify_once(K, N, 1) end)
      end, [1, 10, 100]),
    runs(notify_1_offheap, Notify, Reps,
         fun() -> notify_once(1, Notify, 1, [{message_queue_data, off_heap}]) end),
    N4 = (Notify div 4) * 4,
    runs(notify_4p, N4, Reps, fun() -> notify_once(1, N4, 4) end),
    RtReps = max(1, min(Reps, 3)),
    %% request rounds: one notify queued ahead of each request (a busy manager's path)
    runs(sync_notify, RoundTrips, RtReps, fun() -> sync_once(RoundTrips) end),
    Rounds = max(1, Reps),
    _ = call_latency(max(1, Latency div Rounds)),  % warm-up round, not counted
    Samples = lists:sort(lists:append(
                [call_latency(max(1, Latency div Rounds)) || _ <- lists:seq(1, Rounds)])),
    median(call_median, Samples),
    out(call_p99, percentile(Samples, 0.99) / 1000, us),
    FloodN = max(10, Latency div Rounds div 10),
    _ = call_latency(FloodN, 100),
    Flooded = lists:sort(lists:append([call_latency(FloodN, 100) || _ <- lists:seq(1, Rounds)])),
    median(call_flooded, Flooded),
    _ = call_latency(max(1, Latency div Rounds), 0),
    Idle = lists:sort(lists:append(
             [call_latency(max(1, Latency div Rounds), 0) || _ <- lists:seq(1, Rounds)])),
    median(call_idle, Idle),
    runs(call_tput, RoundTrips, RtReps, fun() -> call_once(RoundTrips) end),
    %% control operations: medians of per-operation samples, after a warm-up round
    lists:foreach(
      fun({Name, F}) ->
              _ = F(Control),
              median(Name, lists:sort(lists:append([F(Control) || _ <- lists:seq(1, Rounds)])))
      end, [{life, fun life/1}, {add_busy, fun add_busy/1}, {delete_busy, fun delete_busy/1}]),
    halt(0);
main(_) ->
    io:format(standard_error, "usage: escript otp_gen_event.escript NotifyEvents "
              "FanoutInvocations RoundTrips LatencySamples Reps ControlSamples~n"
              "       escript otp_gen_event.escript mem_manager|mem_handler Count~n", []),
    halt(2).

%% ------------------------------------------------------------------ scenarios

start_manager(K) -> start_manager(K, []).

start_manager(K, SpawnOpts) ->
    {ok, M} = case SpawnOpts of
                  [] -> gen_event:start();
                  _ -> gen_event:start({local, unique_name()}, [{spawn_opt, SpawnOpts}])
              end,
    [ok = gen_event:add_handler(M, {?MODULE, I}, []) || I <- lists:seq(1, K)],
    M.

check(M, K, Expected) ->
    [Expected = gen_event:call(M, {?MODULE, I}, get) || I <- lists:seq(1, K)],
    ok = gen_event:stop(M).

notify_loop(_M, 0) -> ok;
notify_loop(M, N) -> ok = gen_event:notify(M, N), notify_loop(M, N - 1).

%% N notifies from Producers processes, then one sync_notify: nanoseconds.
notify_once(K, N, Producers) -> notify_once(K, N, Producers, []).

notify_once(K, N, Producers, SpawnOpts) ->
    M = start_manager(K, SpawnOpts),
    Self = self(),
    T0 = now_ns(),
    case Producers of
        1 -> notify_loop(M, N);
        _ ->
            Per = N div Producers,
            Pids = [spawn_link(fun() -> notify_loop(M, Per), Self ! {done, self()} end)
                    || _ <- lists:seq(1, Producers)],
            [receive {done, P} -> ok end || P <- Pids]
    end,
    ok = gen_event:sync_notify(M, last),
    T1 = now_ns(),
    check(M, K, N + 1),
    T1 - T0.

%% Every request below has one notify queued ahead of it, as genevent's queued rows.
sync_loop(_M, 0) -> ok;
sync_loop(M, N) ->
    ok = gen_event:notify(M, N), ok = gen_event:sync_notify(M, N), sync_loop(M, N - 1).

sync_once(N) ->
    M = start_manager(1),
    T0 = now_ns(),
    sync_loop(M, N),
    T1 = now_ns(),
    check(M, 1, 2 * N),
    T1 - T0.

call_loop(_M, 0) -> ok;
call_loop(M, N) ->
    ok = gen_event:notify(M, N), _ = gen_event:call(M, {?MODULE, 1}, N), call_loop(M, N - 1).

call_once(N) ->
    M = start_manager(1),
    T0 = now_ns(),
    call_loop(M, N),
    T1 = now_ns(),
    check(M, 1, N),
    T1 - T0.

latency_loop(_M, 0, _Ahead, Acc) -> Acc;
latency_loop(M, N, Ahead, Acc) ->
    T0 = now_ns(),
    [ok = gen_event:notify(M, N) || _ <- lists:seq(1, Ahead)],
    _ = gen_event:call(M, {?MODULE, 1}, N),
    latency_loop(M, N - 1, Ahead, [now_ns() - T0 | Acc]).

call_latency(N) -> call_latency(N, 1).

%% N calls, each with Ahead notifies queued ahead of it (0: an idle manager).
call_latency(N, Ahead) ->
    M = start_manager(1),
    Samples = latency_loop(M, N, Ahead, []),
    check(M, 1, N * Ahead),
    Samples.

%% N manager lives: start, add the first handler, stop (per-operation ns).
life(N) ->
    [begin
         T0 = now_ns(),
         {ok, M} = gen_event:start(),
         ok = gen_event:add_handler(M, {?MODULE, 1}, []),
         ok = gen_event:stop(M),
         now_ns() - T0
     end || _ <- lists:seq(1, N)].

%% N add_handler (delete_handler) calls on a manager with one handler, one notify ahead of
%% each; the other half of each pair is untimed.
add_busy(N) ->
    M = start_manager(1),
    S = [begin
             T0 = now_ns(),
             ok = gen_event:notify(M, I),
             ok = gen_event:add_handler(M, {?MODULE, I + 1}, []),
             T = now_ns() - T0,
             ok = gen_event:delete_handler(M, {?MODULE, I + 1}, []),
             T
         end || I <- lists:seq(1, N)],
    check(M, 1, N),
    S.

delete_busy(N) ->
    M = start_manager(1),
    S = [begin
             ok = gen_event:add_handler(M, {?MODULE, I + 1}, []),
             T0 = now_ns(),
             ok = gen_event:notify(M, I),
             ok = gen_event:delete_handler(M, {?MODULE, I + 1}, []),
             now_ns() - T0
         end || I <- lists:seq(1, N)],
    check(M, 1, N),
    S.

%% Memory per idle manager with one handler: the managers' own process memory (heap, stack,
%% mailbox, process structure, after garbage collection), summed over K managers. Reading
%% erlang:memory(processes) before and after instead counts every other process of the VM too
%% (the code server, what escript started), whose own garbage collections made the figure
%% swing by hundreds of kilobytes, below zero for a few managers.
mem_per_manager(K) ->
    Ms = [start_manager(1) || _ <- lists:seq(1, K)],
    Bytes = lists:sum([process_memory(M) || M <- Ms]),
    [ok = gen_event:stop(M) || M <- Ms],
    Bytes / K.

%% Growth of one manager process (after garbage collection) per added handler.
mem_per_handler(K) ->
    M = start_manager(1),
    Before = process_memory(M),
    [ok = gen_event:add_handler(M, {?MODULE, I}, []) || I <- lists:seq(2, K + 1)],
    After = process_memory(M),
    ok = gen_event:stop(M),
    (After - Before) / K.

process_memory(Pid) ->
    true = erlang:garbage_collect(Pid),
    {memory, Bytes} = erlang:process_info(Pid, memory),
    Bytes.

%% ------------------------------------------------------------------ helpers

now_ns() -> erlang:monotonic_time(nanosecond).

%% gen_event:start/2 (the form that takes spawn options) wants a name.
unique_name() -> list_to_atom("genevent_bench_" ++ integer_to_list(erlang:unique_integer([positive]))).

%% Reps runs of F (each returns the nanoseconds Count operations took): one line per run.
runs(Name, Count, Reps, F) ->
    lists:foreach(fun(_) -> out(Name, rate(Count, F()), per_s) end, lists:seq(1, Reps)).

%% The median of sorted per-operation samples (ns), and their quartiles, in microseconds.
median(Name, Sorted) ->
    out(Name, percentile(Sorted, 0.5) / 1000, us),
    out(list_to_atom(atom_to_list(Name) ++ ":q1"), percentile(Sorted, 0.25) / 1000, us),
    out(list_to_atom(atom_to_list(Name) ++ ":q3"), percentile(Sorted, 0.75) / 1000, us).

rate(Count, Ns) -> Count * 1.0e9 / max(Ns, 1).

percentile(Sorted, Q) ->
    Len = length(Sorted),
    Rank = min(Len, max(1, ceil(Q * Len))),
    float(lists:nth(Rank, Sorted)).

out(Name, Value, Unit) when is_integer(Value) -> io:format("~s ~b ~s~n", [Name, Value, Unit]);
out(Name, Value, Unit) -> io:format("~s ~.4f ~s~n", [Name, float(Value), Unit]).
