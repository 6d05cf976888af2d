-- TPC-H Q11: Important Stock Identification (validation: NATION = GERMANY, FRACTION = 0.0001 / SF)
-- ${FRACTION} is filled in by run_tpch.py with 0.0001 / SF (e.g. 0.0001 at SF1, 0.00001 at SF10).
select
    ps_partkey,
    sum(ps_supplycost * ps_availqty) as value
from
    partsupp,
    supplier,
    nation
where
    ps_suppkey = s_suppkey
    and s_nationkey = n_nationkey
    and n_name = 'GERMANY'
group by
    ps_partkey
having
    sum(ps_supplycost * ps_availqty) > (
        select
            sum(ps_supplycost * ps_availqty) * ${FRACTION}
        from
            partsupp,
            supplier,
            nation
        where
            ps_suppkey = s_suppkey
            and s_nationkey = n_nationkey
            and n_name = 'GERMANY'
    )
order by
    value desc
