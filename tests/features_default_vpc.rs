//! F10: default VPCs are deleted at initial setup where unused, reported where in use.

mod support;

use serde_json::{json, Value};
use support::{account, changes, Fleet};

fn default_vpcs(fleet: &Fleet, id: &str, region: &str) -> Vec<Value> {
    let out = fleet
        .emu
        .aws_in(id, "ec2", "describe_vpcs", json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}), region)
        .unwrap_or_else(|e| panic!("{e}"));
    out["Vpcs"].as_array().cloned().unwrap_or_default()
}

/// Ids of the subnets and of the internet gateways attached to `vpc`, in `region`.
fn subnets_and_gateways(fleet: &Fleet, id: &str, region: &str, vpc: &str) -> (Vec<String>, Vec<String>) {
    let ids = |out: &Value, list: &str, key: &str| -> Vec<String> {
        let mut v: Vec<String> =
            out[list].as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let filter = |name: &str| json!({"Filters": [{"Name": name, "Values": [vpc]}]});
    let subnets = fleet.emu.aws_in(id, "ec2", "describe_subnets", filter("vpc-id"), region).unwrap();
    let igws = fleet.emu.aws_in(id, "ec2", "describe_internet_gateways", filter("attachment.vpc-id"), region).unwrap();
    (ids(&subnets, "Subnets", "SubnetId"), ids(&igws, "InternetGateways", "InternetGatewayId"))
}

fn gateway_exists(fleet: &Fleet, id: &str, region: &str, igw: &str) -> bool {
    let out = fleet
        .emu
        .aws_in(
            id,
            "ec2",
            "describe_internet_gateways",
            json!({"Filters": [{"Name": "internet-gateway-id", "Values": [igw]}]}),
            region,
        )
        .unwrap();
    !out["InternetGateways"].as_array().unwrap().is_empty()
}

#[test]
fn unused_default_vpcs_are_deleted_and_one_in_use_is_reported_not_forced() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    let tokyo = default_vpcs(&fleet, id, "ap-northeast-1");
    let virginia = default_vpcs(&fleet, id, "us-east-1");
    assert_eq!((tokyo.len(), virginia.len()), (1, 1), "the emulator gives every region a default VPC");

    // Something of the customer's runs in the default VPC of us-east-1.
    let vpc = virginia[0]["VpcId"].as_str().unwrap();
    let subnets = fleet
        .emu
        .aws_in(id, "ec2", "describe_subnets", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}), "us-east-1")
        .unwrap();
    let subnet = subnets["Subnets"][0]["SubnetId"].as_str().unwrap();
    let eni = fleet
        .emu
        .aws_in(
            id,
            "ec2",
            "create_network_interface",
            json!({"SubnetId": subnet, "Description": "customer app"}),
            "us-east-1",
        )
        .unwrap();
    let eni = eni["NetworkInterface"]["NetworkInterfaceId"].as_str().unwrap().to_string();
    let tokyo_vpc = tokyo[0]["VpcId"].as_str().unwrap();
    let (tokyo_subnets, tokyo_igws) = subnets_and_gateways(&fleet, id, "ap-northeast-1", tokyo_vpc);
    let virginia_before = subnets_and_gateways(&fleet, id, "us-east-1", vpc);
    assert!(!tokyo_subnets.is_empty() && tokyo_igws.len() == 1, "{tokyo_subnets:?} {tokyo_igws:?}");
    assert!(!virginia_before.0.is_empty() && virginia_before.1.len() == 1, "{virginia_before:?}");

    let (code, plan) = fleet.report(&["plan", "--initial"]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, id);
    let deletes: Vec<&Value> = a["changes"].as_array().unwrap().iter().filter(|c| c["feature"] == "F10").collect();
    assert_eq!(deletes.len(), 1, "{a}");
    assert_eq!(
        (deletes[0]["action"].as_str(), deletes[0]["region"].as_str()),
        (Some("delete"), Some("ap-northeast-1"))
    );
    let in_use: Vec<&Value> = a["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "in_use").collect();
    assert_eq!(in_use.len(), 1, "{a}");
    assert_eq!(in_use[0]["region"], "us-east-1");
    assert!(in_use[0]["detail"].as_str().unwrap().contains(&eni), "{}", in_use[0]);

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    assert!(default_vpcs(&fleet, id, "ap-northeast-1").is_empty());
    assert_eq!(default_vpcs(&fleet, id, "us-east-1").len(), 1, "a default VPC in use was deleted");
    // The unused one went with its default subnets and its internet gateway, not detached
    // and left behind.
    assert_eq!(subnets_and_gateways(&fleet, id, "ap-northeast-1", tokyo_vpc), (vec![], vec![]));
    for subnet in &tokyo_subnets {
        let left = fleet
            .emu
            .aws_in(
                id,
                "ec2",
                "describe_subnets",
                json!({"Filters": [{"Name": "subnet-id", "Values": [subnet]}]}),
                "ap-northeast-1",
            )
            .unwrap();
        assert!(left["Subnets"].as_array().unwrap().is_empty(), "{subnet} is still there: {left}");
    }
    assert!(!gateway_exists(&fleet, id, "ap-northeast-1", &tokyo_igws[0]), "{} is still there", tokyo_igws[0]);
    // The one in use keeps every subnet and its gateway, still attached.
    assert_eq!(subnets_and_gateways(&fleet, id, "us-east-1", vpc), virginia_before);

    // Maintenance never deletes default VPCs: F10 is initial-only.
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}");
    assert!(!changes(account(&plan, id)).iter().any(|(f, _, _)| f == "F10"));
}
